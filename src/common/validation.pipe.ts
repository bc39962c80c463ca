import { BadRequestException, ValidationError, ValidationPipe } from '@nestjs/common';

export interface FieldError {
  field: string;
  errors: string[];
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((error) => {
    const field = parent ? `${parent}.${error.property}` : error.property;
    const own = error.constraints ? [{ field, errors: Object.values(error.constraints) }] : [];
    return [...own, ...flatten(error.children ?? [], field)];
  });
}

/** class-validator messages start with the property name; prefix the parent path for nested fields. */
function qualify(field: string, text: string): string {
  const parent = field.includes('.') ? field.slice(0, field.lastIndexOf('.') + 1) : '';
  return `${parent}${text}`;
}

/** Enough to act on; a body with thousands of unknown properties must not earn a megabyte of error. */
const MAX_LISTED_PROBLEMS = 20;

/** Whitelisting pipe whose 400 names the offending fields (the first 20), in `message` and in `fields`. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    exceptionFactory: (errors) => {
      const all = flatten(errors);
      const fields = all.slice(0, MAX_LISTED_PROBLEMS);
      const problems = fields.flatMap(({ field, errors: texts }) => texts.map((text) => qualify(field, text)));
      const more = all.length - fields.length;
      return new BadRequestException({
        statusCode: 400,
        error: 'Bad Request',
        message: problems.join('; ') + (more > 0 ? `; and ${more} more` : ''),
        fields,
      });
    },
  });
}
